-- The columns of the files ledger: `pending_files` reads a ledger that records failures.
select column_name
from information_schema.columns
where
    table_catalog = current_database()
    and table_schema = $schema
    and table_name = 'batch_files'
