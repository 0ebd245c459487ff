select count(*) as n from openai_batches.batch_facts
