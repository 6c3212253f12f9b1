-- Realtime voice usage counts toward the account's LLM budget (issue 22): a call's end records
-- one `llm_calls` row of task 'voice' (its tokens and estimated cost) beside `voice_usage`.
ALTER TABLE llm_calls DROP CONSTRAINT llm_calls_task_check;
ALTER TABLE llm_calls ADD CONSTRAINT llm_calls_task_check
    CHECK (task IN ('chat', 'evaluation', 'analysis', 'document_review', 'scenario_generation', 'embedding', 'voice'));
