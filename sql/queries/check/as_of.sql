select as_of from openai_batches.as_of
