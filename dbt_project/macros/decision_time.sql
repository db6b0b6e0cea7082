{#-
    The decision time the warehouse is built as of, and its UTC day.

    var('as_of') pins it (a unit test's override, or `dbt build --vars '{as_of: "2024-06-01T00:00:00Z"}'`);
    without it, the environment variable CAMPAIGN_DBT_AS_OF (the pipeline sets it for its build);
    with neither: now. An ISO timestamp string (or a YAML timestamp) makes a build, and its
    tests, reproducible. A timestamp without an offset is read as UTC (profiles.yml pins the
    session time zone).

    The pipeline passes its clock through the environment, not --vars, and reads it only when
    executing: a var that changes every run would make dbt re-parse the whole project on every
    build (its partial parsing is keyed on the vars), and an env_var read while parsing would be
    recorded and re-parse the models that use it.
-#}

{% macro decision_at() -%}
    {%- set as_of = var('as_of', none) -%}
    {%- if as_of is none and execute -%}
        {%- set as_of = env_var('CAMPAIGN_DBT_AS_OF', '') -%}
    {%- endif -%}
    {%- if as_of is none or (as_of is string and as_of | trim | lower in ['', 'none', 'null']) -%}
        current_timestamp
    {%- else -%}
        cast('{{ as_of }}' as {{ timestamptz_type() }})
    {%- endif -%}
{%- endmacro %}


{% macro decision_day() -%}
    {{ utc_day(decision_at()) }}
{%- endmacro %}


{#- Midnight UTC of a timestamptz, as a timestamptz, whatever the session time zone. -#}
{% macro utc_day(timestamp_expression) -%}
    {{ return(adapter.dispatch('utc_day')(timestamp_expression)) }}
{%- endmacro %}

{% macro default__utc_day(timestamp_expression) -%}
    ((date_trunc('day', ({{ timestamp_expression }}) at time zone 'UTC')) at time zone 'UTC')
{%- endmacro %}

{#- Spark has no `at time zone`; its session time zone is pinned to UTC (profiles.yml). -#}
{% macro spark__utc_day(timestamp_expression) -%}
    date_trunc('DAY', {{ timestamp_expression }})
{%- endmacro %}


{#-
    Elapsed days between two timestamptz values, as a double (fractional days). Microsecond
    epochs are subtracted as integers first: epoch() in seconds as a double loses the last
    microsecond digits of present-day timestamps.
-#}
{% macro days_between(start_expression, end_expression) -%}
    (cast({{ epoch_microseconds(end_expression) }} - {{ epoch_microseconds(start_expression) }} as {{ double_type() }}) / 86400000000)
{%- endmacro %}
