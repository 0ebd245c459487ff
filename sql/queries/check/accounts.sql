-- every account the history or the extractions know, so a quiet one is still checked
select account from openai_batches.batch_lifecycle
union
select account from openai_batches.stg_extractions
order by account
