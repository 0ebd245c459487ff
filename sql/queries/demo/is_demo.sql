-- A demo database carries its mark: the table `about` in a schema no extraction writes.
select count(*) as marks
from information_schema.tables
where table_schema = $schema and table_name = 'about'
