"""The dlt sources batchlens can run, one entry per API: the plug-in boundary.

A source package under pipelines/ is a provider's whole extraction (HTTP, paging,
incremental state, files, its tables); batchlens knows it only through one `Source`
here: how to build it for an account, and how to plan its run from the destination.
Adding a provider is a package under pipelines/, its staging view under sql/staging/,
and one entry below (docs/development.md, "Adding a provider"); nothing else in
batchlens changes. Every source loads the same table contract: `account`, the batch's
ids, its status mapped onto OpenAI's eight words in `status` (the provider's own word in
`status_raw`), `<event>_at` timestamps, request counts, usage and file ids; the staging
view of each source maps its table onto `stg_batches`' columns.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from batchlens.config import Account, Parallelism
from batchlens.run.plan import Reader, plan_account
from openai_batches import openai_batches
from openai_batches.parallel import EarlyRequests
from openai_batches.steps import Steps
from openai_batches.stored import Concurrency


@dataclass(frozen=True)
class Source:
    """One API batchlens reads: its dlt source and the planner of its runs."""

    name: str  # the dlt source's name, and the dataset (schema) its tables land in
    plan: Callable[[Reader, Account, bool, str, Parallelism], Any]
    build: Callable[..., Any]

    def for_account(
        self,
        account: Account,
        full: bool,
        requests: str,
        stored: Any,
        parallel: Parallelism,
        progress: Any,
        early: EarlyRequests,
        steps: Steps,
    ) -> Any:
        """The dlt source of one step of an account's run, with what the planner read
        (`stored`); the same `steps` for every step of the run (`openai_batches.steps`)."""
        return self.build(
            api_key=account.api_key,
            base_url=account.base_url,
            provider=account.provider,
            headers=account.headers,
            account=account.name,
            full=full,
            requests=requests,
            stored=stored,
            concurrency=Concurrency(parallel.retrieve_concurrency, parallel.full_segments),
            progress=progress,
            early=early,
            steps=steps,
        )


# OpenAI's list endpoint, directly or through a gateway that speaks it (Portkey).
OPENAI = Source(name="openai_batches", plan=plan_account, build=openai_batches)
SOURCES: dict[str, Source] = {source.name: source for source in (OPENAI,)}


def source_of(account: Account) -> Source:
    """The source that reads `account`: OpenAI's API shape, the only one so far."""
    return OPENAI
