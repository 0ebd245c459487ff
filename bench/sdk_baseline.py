"""What a user would otherwise write: the official SDK paging through every batch.

Fetch only (nothing stored), `limit=100`, the SDK's own auto-pagination. Run as a script
so that it is timed from process start, like `batchlens extract`.
"""

import sys

from openai import OpenAI


def main(base_url: str, api_key: str) -> None:
    client = OpenAI(base_url=base_url, api_key=api_key, max_retries=5)
    count = sum(1 for _ in client.batches.list(limit=100))
    print(count)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
