select table_name
from information_schema.tables
where table_catalog = current_database() and table_schema = $schema
