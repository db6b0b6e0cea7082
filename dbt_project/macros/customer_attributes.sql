{#-
    The declared customer attributes (config/attributes.yaml, orchestration/core/world/attributes.py).

    The pipeline passes the declaration as the var `customer_attributes`: a list of
    {name, type: numeric | categorical | boolean, sensitive, columns: [{name, value}]}, where
    `columns` are the attribute's feature columns (one-hot for a categorical, none for a
    sensitive one). dbt_project.yml declares none, so `dbt build` on its own builds the attribute
    models without attribute columns unless given the declaration:
        dbt build --vars "$(../.venv/bin/python -m orchestration.core.world.attributes --dbt-vars)"
-#}

{% macro declared_attributes() -%}
    {{ return(var('customer_attributes', [])) }}
{%- endmacro %}


{#- A raw attribute column cast to its declared type (text exports are validated before). -#}
{% macro cast_attribute(attribute) -%}
    {%- if attribute.type == 'numeric' -%}
        cast({{ adapter.quote(attribute.name) }} as {{ double_type() }})
    {%- elif attribute.type == 'boolean' -%}
        cast({{ adapter.quote(attribute.name) }} as boolean)
    {%- else -%}
        cast({{ adapter.quote(attribute.name) }} as {{ string_type() }})
    {%- endif -%}
{%- endmacro %}


{#-
    The feature columns of one attribute from its typed column: the number itself, a boolean as
    0/1, a categorical one-hot (0/1 per declared value). Unknown (null) stays null in each.
-#}
{% macro attribute_feature_columns(attribute, relation_alias) -%}
    {%- set column = relation_alias ~ '.' ~ adapter.quote(attribute.name) -%}
    {%- for feature in attribute.columns -%}
        {%- if attribute.type == 'numeric' -%}
        cast({{ column }} as {{ double_type() }}) as {{ feature.name }}
        {%- elif attribute.type == 'boolean' -%}
        cast(cast({{ column }} as integer) as bigint) as {{ feature.name }}
        {%- else -%}
        cast(case when {{ column }} is null then null when {{ column }} = '{{ feature.value | replace("'", "''") }}' then 1 else 0 end as bigint)
            as {{ feature.name }}
        {%- endif -%}
        {%- if not loop.last %},
        {% endif -%}
    {%- endfor -%}
{%- endmacro %}
