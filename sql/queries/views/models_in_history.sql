-- Every model name the loaded batches carry: the rows of `model_prices` to build.
select distinct model
from openai_batches.batches
where model is not null
