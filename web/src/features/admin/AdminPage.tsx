// Account administration: users (one-time passwords shown once), partner API keys (shown once,
// revocable), webhooks with their delivery log, scenario categories, policy documents, the audit
// log, data retention (users are erased from the users list), and the AI budget with spend per
// counselor and per day, and the center's own risk levels.
import { useState } from "react";
import { PageTitle, Tabs } from "@/components/ui";
import { useMe } from "@/lib/session";
import { UsersPanel } from "./UsersPanel";
import { ApiKeysPanel, WebhooksPanel } from "./IntegrationsPanels";
import { CategoriesPanel, PoliciesPanel } from "./ContentPanels";
import { AuditPanel } from "./AuditPanel";
import { RetentionPanel } from "./PrivacyPanels";
import { RiskLevelsPanel } from "./RiskLevelsPanel";
import { SpendPanel } from "./SpendPanel";

type Tab = "users" | "keys" | "webhooks" | "categories" | "policies" | "audit" | "retention" | "spend" | "risk-levels";

export default function AdminPage() {
  const admin = useMe().data?.user.role === "admin";
  const [tab, setTab] = useState<Tab>(admin ? "users" : "policies");
  const options: { value: Tab; label: string }[] = admin
    ? [
        { value: "users", label: "Users" },
        { value: "keys", label: "API keys" },
        { value: "webhooks", label: "Webhooks" },
        { value: "categories", label: "Categories" },
        { value: "policies", label: "Policy documents" },
        { value: "audit", label: "Audit log" },
        { value: "retention", label: "Data retention" },
        { value: "spend", label: "AI spend" },
        { value: "risk-levels", label: "Risk levels" },
      ]
    : [{ value: "policies", label: "Policy documents" }];
  return (
    <div>
      <PageTitle>Account</PageTitle>
      <Tabs label="Account sections" value={tab} onChange={setTab} options={options} />
      {tab === "users" && <UsersPanel />}
      {tab === "keys" && <ApiKeysPanel />}
      {tab === "webhooks" && <WebhooksPanel />}
      {tab === "categories" && <CategoriesPanel />}
      {tab === "policies" && <PoliciesPanel />}
      {tab === "audit" && <AuditPanel />}
      {tab === "retention" && <RetentionPanel />}
      {tab === "spend" && <SpendPanel />}
      {tab === "risk-levels" && <RiskLevelsPanel />}
    </div>
  );
}
