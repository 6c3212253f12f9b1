-- An account admin's ceiling on LLM spending (issue 22): a monthly budget in US dollars over the
-- estimated cost of the account's `llm_calls` this calendar month (UTC), and a cap on the
-- tokens one chat session's caller may use. NULL: no limit. Spend itself is read from
-- `llm_calls` through `llm_calls_account_idx` (account_id, created_at) and `llm_calls_session_idx`.
ALTER TABLE accounts ADD COLUMN llm_monthly_budget_usd DOUBLE PRECISION
    CHECK (llm_monthly_budget_usd IS NULL OR llm_monthly_budget_usd >= 0);
ALTER TABLE accounts ADD COLUMN session_token_cap BIGINT
    CHECK (session_token_cap IS NULL OR session_token_cap > 0);
