-- 1 when the dataset's schema exists: before any load there is nothing to build on.
select count(*) as found
from information_schema.schemata
where
    catalog_name = current_database()
    and schema_name = $schema
