-- pgbench script for bench/redeem (ceiling 1): the service's conditional UPDATE alone.
-- Each client walks its own slice of 0..cnt-1 (client_id, client_id + clients, ...),
-- scrambled by permute(), so every transaction flips a different issued code.
-- Variables given with -D: lo (the first code id), cnt (how many), clients, n=0.
\set k :client_id + :n * :clients
\set n :n + 1
\set id :lo + permute(:k % :cnt, :cnt)
UPDATE coupons_code SET status = 'redeemed', redeemed_at = now() WHERE id = :id AND status = 'issued' AND expires_at > now();
