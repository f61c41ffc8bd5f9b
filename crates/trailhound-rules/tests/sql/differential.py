"""Runs compiled rule queries on DuckDB, for the differential test (tests/sql_differential.rs).

Usage: differential.py DIR. DIR holds `table.sql` (the CREATE TABLE of a table shaped like the
Athena CloudTrail table), `rows.ndjson` (its rows, each with `_n`, the event's number) and
`queries.json` ([{"rule", "duckdb", "athena"}], WHERE conditions). For each rule it runs the DuckDB
condition as written, parses the Athena condition as Trino with sqlglot, transpiles it to DuckDB
mechanically and runs that too. Writes `results.json`: per rule, the `_n` each selected, or the
error.
"""

import json
import sys
import time

import duckdb
import sqlglot


def main(folder):
    con = duckdb.connect()
    with open(f"{folder}/table.sql") as f:
        con.execute(f.read())
    columns = con.execute(
        "SELECT column_name, data_type FROM duckdb_columns() WHERE table_name = 'cloudtrail' ORDER BY column_index"
    ).fetchall()
    spec = ", ".join(f"'{name}': '{kind}'" for name, kind in columns)
    con.execute(
        f"INSERT INTO cloudtrail BY NAME SELECT * FROM read_json('{folder}/rows.ndjson', "
        f"format = 'newline_delimited', columns = {{{spec}}})"
    )
    with open(f"{folder}/queries.json") as f:
        queries = json.load(f)

    def run(where):
        try:
            rows = con.execute(f"SELECT _n FROM cloudtrail WHERE {where} ORDER BY _n").fetchall()
            return {"rows": [r[0] for r in rows]}
        except Exception as err:  # the test reports it with the rule
            return {"error": str(err).splitlines()[0][:500]}

    results = []
    started = time.time()
    for query in queries:
        result = {"rule": query["rule"], "duckdb": run(query["duckdb"])}
        try:
            parsed = sqlglot.parse_one(f"SELECT _n FROM cloudtrail WHERE {query['athena']}", read="trino")
            where = parsed.args["where"].this.sql(dialect="duckdb")
            result["athena"] = run(where)
        except Exception as err:
            result["athena"] = {"error": f"sqlglot: {str(err).splitlines()[0][:500]}"}
        results.append(result)
    with open(f"{folder}/results.json", "w") as f:
        json.dump({"results": results, "seconds": time.time() - started}, f)


if __name__ == "__main__":
    main(sys.argv[1])
