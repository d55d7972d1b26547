"""Strict inputs: file-level problems are one clear error with file and 1-based line; unknown
columns and keys are refused naming the closest known name."""

from __future__ import annotations

import gzip

import polars as pl
import pytest

from kernel.errors import InvalidInput
from kernel.inputs import check_names, closest, read_table

GOOD = "store_id,sku_id,as_of,on_hand\nS1,A,2024-01-01T07:00:00+00:00,3\n"


@pytest.mark.parametrize(
    ("name", "content", "line", "says"),
    [
        ("empty.csv", b"", 1, "the file is empty"),
        ("blank.csv", b"\n\n", 1, "the file is empty"),
        ("latin1.csv", "a,b\n1,2\n3,caf\xe9\n".encode("latin-1"), 3, "not UTF-8 text"),
        ("quote.csv", b'a,b\n1,2\n3,"open\n4,5\n', 3, "quote opened on this line is never"),
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", 3, "3 fields where the header has 2"),
        ("bad.ndjson", b'{"a": 1}\n{"a": 2}\n{"a": \n', 3, "not JSON"),
        ("list.ndjson", b'{"a": 1}\n[1, 2]\n', 2, "not a JSON object"),
        ("corrupt.parquet", b"PAR1 this is not parquet", None, "not a readable Parquet"),
        ("cut.csv.gz", gzip.compress(b"a,b\n1,2\n" * 1000)[:40], None, "not a readable gzip"),
        ("sheet.xlsx", b"PK\x03\x04", None, "unknown file type"),
    ],
)
def test_a_file_level_problem_is_one_error_with_file_and_line(
    tmp_path, name, content, line, says
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=says) as raised:
        read_table(path, strings=True)
    err = raised.value
    assert err.source == str(path) and err.line == line
    assert str(err).startswith(f"{path}:{line}: " if line else f"{path}: ")


def test_a_good_file_reads_whole(tmp_path) -> None:
    path = tmp_path / "ok.csv.gz"
    path.write_bytes(gzip.compress(GOOD.encode()))
    assert read_table(path, strings=True).row(0) == ("S1", "A", "2024-01-01T07:00:00+00:00", "3")


def test_unknown_names_point_at_the_closest_known_one() -> None:
    assert closest("pack_sise", ["sku_id", "pack_size", "moq_units"]) == "pack_size"
    assert closest("PackSize", ["pack_size"]) == "pack_size"
    assert closest("colour", ["sku_id", "unit_cost"]) is None
    with pytest.raises(InvalidInput, match=r"f.csv:1: unknown column 'packsize' \(did you mean"):
        check_names(["sku_id", "packsize"], ["sku_id", "pack_size"], source="f.csv")
    with pytest.raises(InvalidInput, match="missing column 'sku_id'") as raised:
        check_names(["pack_size"], ["sku_id", "pack_size"], required=["sku_id"], source="f.csv")
    assert raised.value.rule == "column.required"


RULES = """\
suppliers:
  - supplier_id: A
    lead_time_mean: 3
    order_days: Mon
items:
  - sku_id: x
    supplier_id: A
    unit_cost: 1.2
    pack_sise: 12
"""


def test_a_misspelt_rules_key_is_an_error_naming_file_line_and_the_key_meant(tmp_path) -> None:
    from replenishment.rules import RulesError, load_rules

    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    with pytest.raises(RulesError, match=r"rules.yaml:9: unknown items field 'pack_sise'") as e:
        load_rules([path])
    assert "did you mean 'pack_size'" in str(e.value) and e.value.field == "pack_sise"


def test_a_misspelt_rules_column_is_an_error_naming_file_and_header_line(tmp_path) -> None:
    from replenishment.rules import RulesError, load_rules

    (tmp_path / "suppliers.csv").write_text("supplier_id,lead_time_mean,order_days\nA,3,Mon\n")
    (tmp_path / "items.csv").write_text("sku_id,supplier_id,unit_cost,packsize\nx,A,1,6\n")
    with pytest.raises(RulesError, match=r"items.csv:1: unknown items column 'packsize'") as e:
        load_rules([tmp_path])
    assert "did you mean 'pack_size'" in str(e.value)
    (tmp_path / "items.csv").write_text("sku_id,supplier_id\nx,A\n")
    with pytest.raises(RulesError, match=r"items.csv:1: missing items column 'unit_cost'"):
        load_rules([tmp_path])


def test_a_broken_rules_file_is_one_error(tmp_path) -> None:
    from replenishment.rules import RulesError, load_rules

    (tmp_path / "suppliers.csv").write_text('supplier_id,lead_time_mean,order_days\nA,3,"Mon\n')
    with pytest.raises(RulesError, match=r"suppliers.csv:2: a quote opened on this line"):
        load_rules([tmp_path / "suppliers.csv"])
    path = tmp_path / "rules.yaml"
    path.write_text("suppliers:\n  - supplier_id: [A\n")
    with pytest.raises(RulesError, match=r"rules.yaml:3: not valid YAML"):
        load_rules([path])


def test_inventory_files_refuse_unknown_columns_and_name_the_bad_line(tmp_path) -> None:
    from features.inventory import read_inventory

    path = tmp_path / "stock.csv"
    path.write_text("store_id,sku_id,as_of,onhand\nS1,A,2024-01-01T07:00:00+00:00,3\n")
    with pytest.raises(InvalidInput, match=r"stock.csv:1: unknown column 'onhand'") as e:
        read_inventory(path)
    assert "did you mean 'on_hand'" in str(e.value)
    path.write_text(GOOD + "S1,B,2024-01-01 07:00,1\n")
    with pytest.raises(InvalidInput, match=r"stock.csv:3: as_of='2024-01-01 07:00' must be"):
        read_inventory(path)
    path.write_text(GOOD)
    assert read_inventory(path)["on_hand"].to_list() == [3.0]


def test_http_inventory_rows_are_numbered_from_the_request(tmp_path) -> None:
    from features.inventory import validate_inventory

    frame = pl.DataFrame(
        {"store_id": ["S1", "S1"], "sku_id": ["A", "B"], "as_of": ["x", "y"], "on_hand": [1, 2]}
    )
    with pytest.raises(InvalidInput, match="row 0: as_of='x'") as e:
        validate_inventory(frame)
    assert (e.value.field, e.value.rule) == ("as_of", "as_of.timestamp")


def test_cli_says_what_is_wrong_with_a_file_in_one_line(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from replen.cli import app

    monkeypatch.setenv("REPLEN_DATA_DIR", str(tmp_path / "data"))
    path = tmp_path / "pos.csv"
    path.write_bytes(b"event_id,store_id\n1,\xff\n")
    result = CliRunner().invoke(app, ["ingest", "pos", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path}:2: not UTF-8 text (byte 0xff at column 3); save the file as UTF-8, "
        "e.g. `iconv -f latin1 -t utf-8 in.csv > out.csv`"
    ]
