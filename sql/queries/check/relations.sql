-- The tables and views of the dataset: the optional rules light up when theirs exist.
select table_name
from information_schema.tables
where table_catalog = current_database() and table_schema = $schema
