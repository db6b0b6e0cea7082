{#-
    The spark target reads the raw contract where dbt-duckdb does, the Parquet files named by
    each source's `external_location`: before each build they are (re-)registered as tables
    `raw.<table>` over those files, in the session's metastore. Dropping and re-creating drops
    only the catalog entry (the files are the source's own, never deleted), and a freshly
    registered table sees the files as they are now. A no-op on every other target.
-#}
{% macro register_spark_raw_sources() -%}
    {%- if target.type != 'spark' or not execute -%}
        {{ return('') }}
    {%- endif -%}
    {%- do run_query('create database if not exists raw') -%}
    {%- for source in graph.sources.values() if source.source_name == 'raw' -%}
        {%- set location = source.meta.external_location.format(name=source.name) -%}
        {%- do run_query('drop table if exists raw.' ~ source.name) -%}
        {%- do run_query(
            "create table raw." ~ source.name ~ " using parquet options (path '" ~ location ~ "')"
        ) -%}
    {%- endfor -%}
{%- endmacro %}
