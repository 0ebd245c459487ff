create table batchlens_demo.about as
select
    'written by batchlens demo' as note,
    current_timestamp as created_at
