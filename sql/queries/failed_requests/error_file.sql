select state
from openai_batches.stg_batch_files
where account = $account and file_id = $file_id
