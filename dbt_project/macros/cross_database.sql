{#-
    The few functions DuckDB has and Postgres spells differently, so the same models build on
    both targets (dev: dbt-duckdb; postgres: dbt-postgres, the production profile). Each macro
    dispatches on the adapter: `default__` is DuckDB's spelling, `postgres__` the Postgres one.
-#}

{#-
    The value of `value_expression` on the row with the greatest `order_by_expressions` (a
    comma-separated list compared left to right), within each group.
-#}
{% macro arg_max(value_expression, order_by_expressions) -%}
    {{ return(adapter.dispatch('arg_max')(value_expression, order_by_expressions)) }}
{%- endmacro %}

{% macro default__arg_max(value_expression, order_by_expressions) -%}
    arg_max({{ value_expression }}, ({{ order_by_expressions }}))
{%- endmacro %}

{% macro postgres__arg_max(value_expression, order_by_expressions) -%}
    {%- set keys = order_by_expressions.split(',') -%}
    (array_agg({{ value_expression }} order by
        {%- for key in keys %} {{ key | trim }} desc nulls last{% if not loop.last %},{% endif %}{% endfor %}))[1]
{%- endmacro %}


{#- Microseconds since the Unix epoch of a timestamptz, as a bigint. -#}
{% macro epoch_microseconds(timestamp_expression) -%}
    {{ return(adapter.dispatch('epoch_microseconds')(timestamp_expression)) }}
{%- endmacro %}

{% macro default__epoch_microseconds(timestamp_expression) -%}
    epoch_us({{ timestamp_expression }})
{%- endmacro %}

{% macro postgres__epoch_microseconds(timestamp_expression) -%}
    cast(extract(epoch from {{ timestamp_expression }}) * 1000000 as bigint)
{%- endmacro %}

{% macro spark__arg_max(value_expression, order_by_expressions) -%}
    max_by({{ value_expression }}, struct({{ order_by_expressions }}))
{%- endmacro %}

{% macro spark__epoch_microseconds(timestamp_expression) -%}
    unix_micros({{ timestamp_expression }})
{%- endmacro %}


{#-
    Type names: DuckDB and Postgres spell an instant `timestamptz`, text `varchar` and a float
    `double precision`; Spark has `timestamp` (an instant in the session time zone, pinned to
    UTC), `string` and `double`.
-#}
{% macro timestamptz_type() -%}
    {{ return(adapter.dispatch('timestamptz_type')()) }}
{%- endmacro %}

{% macro default__timestamptz_type() -%} timestamptz {%- endmacro %}

{% macro spark__timestamptz_type() -%} timestamp {%- endmacro %}

{% macro string_type() -%}
    {{ return(adapter.dispatch('string_type')()) }}
{%- endmacro %}

{% macro default__string_type() -%} varchar {%- endmacro %}

{% macro spark__string_type() -%} string {%- endmacro %}

{% macro double_type() -%}
    {{ return(adapter.dispatch('double_type')()) }}
{%- endmacro %}

{% macro default__double_type() -%} double precision {%- endmacro %}

{% macro spark__double_type() -%} double {%- endmacro %}


{#- A timestamp later than every real one (an open end of a validity interval). -#}
{% macro timestamp_infinity() -%}
    {{ return(adapter.dispatch('timestamp_infinity')()) }}
{%- endmacro %}

{% macro default__timestamp_infinity() -%}
    cast('infinity' as timestamptz)
{%- endmacro %}

{% macro spark__timestamp_infinity() -%}
    timestamp'9999-12-31 23:59:59'
{%- endmacro %}


{#-
    Whether a string matches a regular expression. Anchor the pattern (^...$): `~` is a full
    match in DuckDB but a search in Postgres, and Spark's `rlike` is a search.
-#}
{% macro matches_regex(expression, pattern) -%}
    {{ return(adapter.dispatch('matches_regex')(expression, pattern)) }}
{%- endmacro %}

{% macro default__matches_regex(expression, pattern) -%}
    ({{ expression }} ~ '{{ pattern }}')
{%- endmacro %}

{% macro spark__matches_regex(expression, pattern) -%}
    ({{ expression }} rlike '{{ pattern }}')
{%- endmacro %}
