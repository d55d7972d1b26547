-- One PostgreSQL server, three databases: Replen's (POs, rules, ledger, scheduler jobs),
-- MLflow's tracking and registry, and the Feast registry.
CREATE DATABASE mlflow OWNER replen;
CREATE DATABASE feast OWNER replen;
