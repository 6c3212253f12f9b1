-- Rubric v3's safety gates: four new flag types, flags a gate raises from the check answers
-- (`derived`), and on each evaluation the call facts the evaluator answered and the gate table
-- (gates and blocked-by rules) it was scored with, so an old grade reads as it was given.

ALTER TABLE session_flags DROP CONSTRAINT session_flags_flag_type_check;
ALTER TABLE session_flags ADD CONSTRAINT session_flags_flag_type_check CHECK (flag_type IN ('suicide_not_asked', 'missed_plan_or_means', 'coercion_without_imminent_risk', 'missed_rescue', 'dismissive_language', 'medical_advice', 'policy_violation', 'caller_inconsistency', 'ai_caller_problem', 'other', 'firearms_not_asked', 'risk_to_others_not_assessed', 'false_threats_or_coercion', 'missed_third_party_rescue'));
ALTER TABLE session_flags DROP CONSTRAINT session_flags_source_check;
ALTER TABLE session_flags ADD CONSTRAINT session_flags_source_check CHECK (source IN ('evaluation', 'analysis', 'user_feedback', 'derived'));

-- JSON: fact key -> {answer, turns}; '{}' for evaluations graded before v3.
ALTER TABLE evaluations ADD COLUMN facts TEXT NOT NULL DEFAULT '{}';
-- JSON: the gates and blocked-by rules the score was computed with; NULL before v3 (scored by
-- the flag caps of its own version, which stay as they were).
ALTER TABLE evaluations ADD COLUMN gate_table TEXT;
