{{ config(
    materialized=rapport.incremental_on_duckdb(),
    unique_key=['campaign_id', 'recipient_key'],
    incremental_strategy='delete+insert'
) }}
-- One row per campaign and recipient (distinct lower(trim(email))) with an event: flags has bit i set when
-- the recipient has an event matching the i-th funnel condition (macros/campaign_funnel.sql); one group-by
-- over the events keeps a bit per condition (bit_or of the events' bits) where eleven count(distinct ...)
-- would build eleven hash tables. last_extracted_at: the latest landing of those events.
--
-- Incremental on DuckDB (issue 16, docs/marts-incremental.md): events never change and leave the staging
-- table only by an erasure or a rollback, after which the next build reads everything. So a recipient's
-- flags are the or of its flags so far and those of its events landed since: a day build reads the events
-- landed after the latest one this table holds and rewrites only their recipients' rows (delete+insert on
-- the key), where the full table groups every event (9.3M at 1M people). Reading an event twice sets the
-- same bits, so a build repeated after a crash gives the same rows. A plain table on Spark.
{%- set landed_after = campaign_recipient_flags_landed_after() %}

with events as (
    select
        campaign_id,
        lower(trim(email)) as recipient_key,
        event,
        coalesce(sg_machine_open, false) as is_machine_open,
        _extracted_at
    from {{ ref('stg_esp__events') }}
    where
        campaign_id is not null
        and email is not null
        -- a day build by recipient: only the events landed after the latest one this table holds
        and {{ '_extracted_at > ' ~ landed_after if landed_after else 'true' }}
),

landed_flags as (
    select
        campaign_id,
        recipient_key,
        bit_or({{ campaign_funnel_event_bits() }}) as flags,
        max(_extracted_at) as last_extracted_at
    from events
    group by campaign_id, recipient_key
)

-- by recipient: the landed events' recipients, their bits or'ed with those they had (their landing is the
-- latest: later than every row's here)
select
    landed_flags.campaign_id,
    landed_flags.recipient_key,
    {%- if landed_after %}
        landed_flags.flags | coalesce(built.flags, 0) as flags,
    {%- else %}
        landed_flags.flags,
    {%- endif %}
    landed_flags.last_extracted_at
from landed_flags
{%- if landed_after %}
    left join {{ this }} as built
        on
            landed_flags.campaign_id = built.campaign_id
            and landed_flags.recipient_key = built.recipient_key
{%- endif %}
