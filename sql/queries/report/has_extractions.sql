select count(*) as tables_found
from information_schema.tables
where
    table_catalog = current_database()
    and table_schema = $schema
    and table_name = $table
