-- The points in time segments are computed at. One row per scope:
--   'as_of'                the run's as-of date (var `as_of`, RAPPORT_AS_OF; today's UTC date if unset):
--                          orders created on or before that date count.
--   'send:<send_at>'       one per distinct campaign send time, for campaign_segment_performance: the
--                          segment as of the day before the send, from orders created before send_at only
--                          (no leakage from the future). send_at is written to the microsecond (both
--                          engines' precision): two sends within one second are two cutoffs (an order
--                          between them counts for the later one only), so two scopes.
-- Every RFM input is computed per scope by int_segment_rfm, so both uses share one definition.
{%- set as_of = var('as_of', none) or modules.datetime.datetime.utcnow().date().isoformat() %}

with run_scope as (
    select
        'as_of' as scope_id,
        cast('{{ as_of }}' as date) as as_of_date,
        cast(cast('{{ as_of }}' as date) + interval 1 day as timestamp) as cutoff_at
),

send_times as (
    select distinct send_at
    from {{ ref('stg_esp__campaigns') }}
    where send_at is not null
),

send_scopes as (
    select
        'send:' || {{ iso_micros_text('send_at') }} as scope_id,
        cast(cast(send_at as date) - interval 1 day as date) as as_of_date,
        send_at as cutoff_at
    from send_times
)

select
    scope_id,
    as_of_date,
    cutoff_at
from run_scope
union all
select
    scope_id,
    as_of_date,
    cutoff_at
from send_scopes
