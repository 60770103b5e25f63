{{/* Names and labels shared by every template. */}}

{{- define "nanomq-appliance.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "nanomq-appliance.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "nanomq-appliance.selectorLabels" -}}
app.kubernetes.io/name: {{ include "nanomq-appliance.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "nanomq-appliance.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "nanomq-appliance.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "nanomq-appliance.configMapName" -}}
{{- default (include "nanomq-appliance.fullname" .) .Values.existingConfigMap }}
{{- end }}

{{- define "nanomq-appliance.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "nanomq-appliance.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "nanomq-appliance.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- /* The Secret mounted at /etc/nanomq-secret: the user's, the chart's, or none (empty). */}}
{{- define "nanomq-appliance.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if .Values.secret.create }}
{{- include "nanomq-appliance.fullname" . }}
{{- end }}
{{- end }}

{{- /* A StatefulSet when the chart makes the data volume claims, else a Deployment. */}}
{{- define "nanomq-appliance.workloadKind" -}}
{{- if and .Values.persistence.enabled (not .Values.persistence.existingClaim) }}StatefulSet{{ else }}Deployment{{ end }}
{{- end }}

{{- /* Label matchers for this release's scrape targets in `up`, whatever the job is called. */}}
{{- define "nanomq-appliance.targetSelector" -}}
{{- if .Values.metrics.prometheusRule.targetSelector }}
{{- .Values.metrics.prometheusRule.targetSelector }}
{{- else }}
{{- /* Deployment pods are <fullname>-<template hash>-<5 chars>, StatefulSet pods <fullname>-<ordinal>. */}}
{{- printf "namespace=%q, pod=~%q" .Release.Namespace (printf "%s-([0-9]+|[a-z0-9]+-[a-z0-9]{5})" (include "nanomq-appliance.fullname" .)) }}
{{- end }}
{{- end }}

{{- /* The broker's NanoMQ variables: ports and listeners from the values, so the pod, the probes,
the Service and the broker cannot disagree. Also given to the config watcher, which reads the same config. */}}
{{- define "nanomq-appliance.brokerEnv" -}}
- name: NANOMQ_BROKER_URL
  value: "nmq-tcp://0.0.0.0:{{ .Values.containerPorts.mqtt }}"
- name: NANOMQ_HTTP_SERVER_PORT
  value: {{ .Values.containerPorts.http | quote }}
{{- if .Values.tls.enabled }}
- name: NANOMQ_TLS_ENABLE
  value: "true"
- name: NANOMQ_TLS_URL
  value: "tls+nmq-tcp://0.0.0.0:{{ .Values.containerPorts.mqtts }}"
- name: NANOMQ_TLS_CERT_PATH
  value: /etc/nanomq-tls/{{ .Values.tls.certKey }}
- name: NANOMQ_TLS_KEY_PATH
  value: /etc/nanomq-tls/{{ .Values.tls.keyKey }}
{{- with .Values.tls.caKey }}
- name: NANOMQ_TLS_CA_CERT_PATH
  value: /etc/nanomq-tls/{{ . }}
{{- end }}
{{- with .Values.tls.keyPasswordKey }}
- name: NANOMQ_TLS_KEY_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.tls.existingSecret }}
      key: {{ . }}
{{- end }}
- name: NANOMQ_TLS_VERIFY_PEER
  value: {{ .Values.tls.verifyPeer | quote }}
- name: NANOMQ_TLS_FAIL_IF_NO_PEER_CERT
  value: {{ .Values.tls.failIfNoPeerCert | quote }}
{{- end }}
{{- if .Values.websocket.enabled }}
- name: NANOMQ_WEBSOCKET_ENABLE
  value: "true"
- name: NANOMQ_WEBSOCKET_URL
  value: "nmq-ws://0.0.0.0:{{ .Values.containerPorts.ws }}{{ .Values.websocket.path }}"
{{- end }}
{{- with .Values.httpAuth.existingSecret }}
- name: NANOMQ_HTTP_SERVER_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.httpAuth.usernameKey }}
- name: NANOMQ_HTTP_SERVER_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.httpAuth.passwordKey }}
{{- end }}
{{- end }}

{{- /* The config, secret and TLS directories, read-only (broker and config watcher). */}}
{{- define "nanomq-appliance.readOnlyMounts" -}}
- name: config
  mountPath: /etc/nanomq
  readOnly: true
{{- if include "nanomq-appliance.secretName" . }}
- name: secret
  mountPath: /etc/nanomq-secret
  readOnly: true
{{- end }}
{{- if .Values.tls.enabled }}
- name: tls
  mountPath: /etc/nanomq-tls
  readOnly: true
{{- end }}
{{- end }}
