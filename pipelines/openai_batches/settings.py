"""Constants of the Batch API and of the tables batchlens loads it into."""

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PAGE_LIMIT = 100  # the API's maximum: the fewest requests per history
DEFAULT_ACCOUNT = "default"

STATUSES = (
    "validating",
    "failed",
    "in_progress",
    "finalizing",
    "completed",
    "expired",
    "cancelling",
    "cancelled",
)
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})

TIMESTAMP_FIELDS = (
    "created_at",
    "in_progress_at",
    "expires_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)
STRING_FIELDS = (
    "id",
    "object",
    "endpoint",
    "model",
    "input_file_id",
    "completion_window",
    "status",
    "output_file_id",
    "error_file_id",
)
# Nested objects the loader flattens into `<parent>__<child>` columns, as dlt would.
REQUEST_COUNT_FIELDS = ("total", "completed", "failed")
USAGE_FIELDS = (
    ("input_tokens",),
    ("input_tokens_details", "cached_tokens"),
    ("output_tokens",),
    ("output_tokens_details", "reasoning_tokens"),
    ("total_tokens",),
)
# The fields of an `errors.data` entry that have their own typed column.
ERROR_FIELDS = ("code", "message", "param", "line")
# Handled explicitly; any other top-level key is a field the API added later.
KNOWN_FIELDS = frozenset(
    {*STRING_FIELDS, *TIMESTAMP_FIELDS, "request_counts", "usage", "metadata", "errors"}
)

# A unix time above this is in milliseconds (10**11 seconds is the year 5138).
MILLISECONDS_THRESHOLD = 10**11

BATCHES_TABLE = "batches"
ERRORS_TABLE = "batches__errors__data"
EXTRACTIONS_TABLE = "extractions"
DATASET_NAME = "openai_batches"
REQUESTS_TABLE = "batch_requests"  # one row per line of a batch's error or output file
FILES_TABLE = "batch_files"  # the ledger: one row per file fetched, or found gone
