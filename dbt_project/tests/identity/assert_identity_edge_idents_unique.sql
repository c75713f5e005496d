-- Fails (returns rows) when two linking identifier values share an ident: ident is stable_key of
-- `type:value` (60 bits of its md5), and a collision would join the records of both values into one
-- cluster. Probability ~n^2/2^61 (about 1e-5 at 6M values); if it ever fails, report it: the key needs more bits.
select
    ident,
    count(distinct identifier_type || ':' || identifier_value) as values_sharing_it
from {{ ref('int_identity_edges_filtered') }}
group by ident
having count(distinct identifier_type || ':' || identifier_value) > 1
