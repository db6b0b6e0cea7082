{#-
    Override of dbt-duckdb's write_to_file (used only by the `external` materialization).

    When a model returns no rows, dbt-duckdb inserts one all-NULL row into the table it exports
    (so that the Parquet file has a schema) and hides that row again in the view it creates over
    the file. Python readers read the file, not the view, and would see a row whose keys are all
    null. Every mart has a non-null primary key, so a row that is null in every column is never
    real: it is dropped here and an empty model exports an empty file with the right schema.
-#}
{% macro write_to_file(relation, location, options) -%}
  {%- set columns = adapter.get_columns_in_relation(relation) -%}
  {% call statement('write_to_file') -%}
    copy (
      select * from {{ relation }}
      where not (
        {%- for column in columns %}
        {{ adapter.quote(column.column) }} is null{% if not loop.last %} and{% endif %}
        {%- endfor %}
      )
    ) to '{{ location }}' ({{ options }})
  {%- endcall %}
{%- endmacro %}
