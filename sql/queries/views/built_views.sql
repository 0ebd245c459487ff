-- The views of the dataset's schema: a build is skipped only when every model has one.
select table_name as view_name
from information_schema.tables
where
    table_catalog = current_database()
    and table_schema = $schema
    and table_type = 'VIEW'
