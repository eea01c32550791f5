-- pgbench script for bench/issue (the ceiling): the SQL at the heart of one issuance,
-- in one transaction, as the services run it (docs/adr/0005-limit-enforcement.md).
-- One client per rep: client n spends rep n's counters. Variables given with -D:
-- user_lo (rep00's id), offer, customer_lo, customer_hi, budget.
\set uid :user_lo + :client_id
\set cid random(:customer_lo, :customer_hi)
BEGIN;
SELECT id FROM appease_customer WHERE id = :cid FOR UPDATE;
SELECT count(*) FROM appease_issuance WHERE customer_id = :cid AND created_at >= now() - interval '30 days'
  AND status IN ('pending_approval', 'issued', 'delivered', 'failed');
INSERT INTO appease_budgetcounter (user_id, currency, period, period_start, spent_cost_amount, spent_face_amount, issuances_count)
  VALUES (:uid, 'USD', 'day', current_date, 0, 0, 0), (:uid, 'USD', 'week', date_trunc('week', now())::date, 0, 0, 0),
         (:uid, 'USD', 'month', date_trunc('month', now())::date, 0, 0, 0)
  ON CONFLICT DO NOTHING;
UPDATE appease_budgetcounter SET spent_cost_amount = spent_cost_amount + 3, spent_face_amount = spent_face_amount + 5,
  issuances_count = issuances_count + 1
  WHERE user_id = :uid AND currency = 'USD' AND period = 'day' AND period_start = current_date
  AND spent_cost_amount <= 1000000000 - 3;
UPDATE appease_budgetcounter SET spent_cost_amount = spent_cost_amount + 3, spent_face_amount = spent_face_amount + 5,
  issuances_count = issuances_count + 1
  WHERE user_id = :uid AND currency = 'USD' AND period = 'week' AND period_start = date_trunc('week', now())::date;
UPDATE appease_budgetcounter SET spent_cost_amount = spent_cost_amount + 3, spent_face_amount = spent_face_amount + 5,
  issuances_count = issuances_count + 1
  WHERE user_id = :uid AND currency = 'USD' AND period = 'month' AND period_start = date_trunc('month', now())::date;
SELECT id AS code_id FROM coupons_code WHERE offer_id = :offer AND status = 'available' ORDER BY id LIMIT 1
  FOR UPDATE SKIP LOCKED \gset
UPDATE coupons_code SET status = 'issued', issued_at = now(), expires_at = now() + interval '30 days' WHERE id = :code_id;
INSERT INTO coupons_codeevent (code_id, kind, from_status, to_status, currency, reason, created_at)
  VALUES (:code_id, 'issued', 'available', 'issued', 'USD', 'bench', now());
INSERT INTO appease_issuance (id, csr_id, customer_id, offer_id, reason_code_id, note, apology_text, channel, code_id,
  status, currency, face_value_amount, cost_amount, breached_limits, created_at, issued_at, decision_comment, void_reason,
  complaint_start_source)
  VALUES (gen_random_uuid(), :uid, :cid, :offer, (SELECT min(id) FROM appease_reasoncode), 'bench', '', 'email', :code_id,
          'issued', 'USD', 5, 3, '[]', now(), now(), '', '', '');
INSERT INTO appease_auditevent (actor_id, actor_label, action, object_type, object_id, after, request_id, created_at)
  VALUES (:uid, 'user:bench', 'issuance.create', 'appease.issuance', 'bench', '{"status": "issued"}', '', now());
COMMIT;
