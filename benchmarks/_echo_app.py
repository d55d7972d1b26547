"""Baseline server for the HTTP benchmark: parses the JSON body and answers, nothing else."""

import json

from fastapi import FastAPI, Request

app = FastAPI()


@app.post("/v1/pos/events")
async def echo(request: Request) -> dict[str, int]:
    rows = json.loads(await request.body())
    return {"received": len(rows)}
