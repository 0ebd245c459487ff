"""Every OpenAI batch of one account in DuckDB, the plain dlt way: no batchlens needed.

    python pipelines/openai_batches_pipeline.py

The key comes the dlt way: `[sources.openai_batches] api_key` in `.dlt/secrets.toml`, or
`SOURCES__OPENAI_BATCHES__API_KEY` (and `SOURCES__OPENAI_BATCHES__BASE_URL` for a gateway
or the built-in simulator). Run it again and it reads only what is new plus every batch
that was still open last time: the source keeps that in dlt's state, which commits with
the rows. A long first run commits in steps, so that one stopped halfway is finished by
the next from where it stopped. `batchlens extract` runs this same source, with a plan
read from the database that makes each run cheaper (docs/incremental.md).
"""

from __future__ import annotations

import dlt

from openai_batches import openai_batches
from openai_batches.steps import Steps


def load_batches(requests: str = "errors") -> dlt.Pipeline:
    """Loads new and still-open batches, and the terminal batches' error files line by line.

    `requests` is "errors" (the failed requests, the default), "all" (output files too)
    or "none". The tables are merged on (account, id), so a batch is one row however often
    its status changes; the source's hints say so, nothing here needs to.
    """
    pipeline = dlt.pipeline(
        # not "openai_batches": a file named like its dataset makes every
        # `openai_batches.<table>` reference ambiguous in DuckDB (catalog or schema?)
        pipeline_name="openai_batches_pipeline",
        destination="duckdb",
        dataset_name="openai_batches",
    )
    # One load package per step (a few thousand batches, or a minute), each with its state.
    steps = Steps()
    try:
        while True:
            print(pipeline.run(openai_batches(requests=requests, steps=steps)))
            if not steps.more:
                break
    finally:
        steps.close()
    return pipeline


if __name__ == "__main__":
    load_batches()
