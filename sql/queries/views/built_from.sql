-- The fingerprint of what the views were last built from (one row, or none).
select fingerprint
from openai_batches._batchlens_views
