{{- define "pt.name" -}}{{ .Release.Name }}-proto-trainer{{- end -}}
{{- define "pt.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
{{- define "pt.secret" -}}{{ .Values.existingSecret | default (include "pt.name" .) }}{{- end -}}
{{- define "pt.labels" -}}
app.kubernetes.io/name: proto-trainer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "pt.selector" -}}
app.kubernetes.io/name: proto-trainer
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}
{{- define "pt.podSecurity" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}
{{- define "pt.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}
{{- define "pt.recordingsClaim" -}}{{ .Values.recordings.existingClaim | default (printf "%s-recordings" (include "pt.name" .)) }}{{- end -}}
