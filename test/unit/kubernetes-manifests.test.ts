import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse } from 'yaml';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ConfigSchema } from '../../src/config/config.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const DIR = resolve(ROOT, 'deploy/kubernetes');

/** The Kubernetes schemas (kubernetes-models, generated from the API's OpenAPI) by apiVersion/kind. */
const MODELS: Record<string, new (d: any) => { validate(): void }> = {
  'apps/v1/Deployment': Deployment,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
};

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; [k: string]: any };
const load = (file: string): Doc[] =>
  parseAllDocuments(readFileSync(resolve(DIR, file), 'utf8')).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as Doc;
  });
const kustomization = parse(readFileSync(resolve(DIR, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
const docs = kustomization.resources.flatMap(load);
const find = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name)!;
const validate = (d: Doc) => {
  const Model = MODELS[`${d.apiVersion}/${d.kind}`];
  expect(Model, `no schema for ${d.apiVersion} ${d.kind}`).toBeDefined();
  new Model(d).validate();
};

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  it('every resource, and the example Secret, validates against the Kubernetes schemas', () => {
    expect(docs.length).toBeGreaterThanOrEqual(10);
    for (const d of [...docs, ...load('secret.example.yaml')]) validate(d);
  });

  it('the validator refuses what the API server would (so the check above can fail)', () => {
    const broken = structuredClone(find('Deployment', 'threshold-api'));
    broken.spec.replicas = 'two';
    expect(() => validate(broken)).toThrow(/replicas/);
    const badProbe = structuredClone(find('Deployment', 'threshold-worker'));
    badProbe.spec.template.spec.containers[0].readinessProbe.httpGet.port = { port: 1 };
    expect(() => validate(badProbe)).toThrow();
  });

  it('the API and the worker are separate Deployments running the compiled entry points, non-root with a read-only root', () => {
    const config = find('ConfigMap', 'threshold-config').data as Record<string, string>;
    for (const [name, entry] of [['threshold-api', 'src/main.ts'], ['threshold-worker', 'workers/main.ts']]) {
      const pod = find('Deployment', name).spec.template.spec;
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      expect(pod.automountServiceAccountToken).toBe(false);
      const [c] = pod.containers;
      expect(c.command).toEqual(['node', 'scripts/run.mjs', entry]);
      expect(existsSync(resolve(ROOT, entry))).toBe(true);
      expect(c.securityContext).toMatchObject({ runAsNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
      // Liveness and readiness are different questions; the probe port is the one the process listens on.
      expect(c.livenessProbe.httpGet.path).toBe('/health/live');
      expect(c.readinessProbe.httpGet.path).toBe('/health/ready');
      const port = c.ports.find((p: { name: string }) => p.name === c.readinessProbe.httpGet.port).containerPort;
      expect(String(port)).toBe(name === 'threshold-api' ? config.PORT : config.WORKER_HEALTH_PORT);
      // Secrets by reference only: no literal value for any of them.
      for (const key of ['DATABASE_URL', 'REDIS_URL', 'THRESHOLD_MASTER_KEY', 'SMTP_URL']) {
        const e = c.env.find((v: { name: string }) => v.name === key);
        expect(e.value).toBeUndefined();
        expect(e.valueFrom.secretKeyRef).toMatchObject({ name: 'threshold-secrets', key });
      }
      expect(c.resources.limits.memory).toBeDefined();
    }
  });

  it('the ConfigMap sets only variables Threshold reads, and none of the secrets', () => {
    const keys = Object.keys(find('ConfigMap', 'threshold-config').data);
    const known = new Set(Object.keys(ConfigSchema.shape));
    expect(keys.filter((k) => !known.has(k))).toEqual([]);
    expect(keys).not.toContain('THRESHOLD_MASTER_KEY');
    expect(keys).not.toContain('DATABASE_URL');
    expect(ConfigSchema.safeParse(find('ConfigMap', 'threshold-config').data).success).toBe(true);
  });

  it('autoscalers and disruption budgets target the Deployments; the Service selects API pods; traffic is denied by default', () => {
    for (const name of ['threshold-api', 'threshold-worker']) {
      const hpa = find('HorizontalPodAutoscaler', name);
      expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name });
      expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
      const labels = find('Deployment', name).spec.template.metadata.labels;
      expect(labels).toMatchObject(find('PodDisruptionBudget', name).spec.selector.matchLabels);
    }
    const api = find('Deployment', 'threshold-api').spec.template.metadata.labels;
    expect(api).toMatchObject(find('Service', 'threshold-api').spec.selector);
    expect(find('Service', 'threshold-api').spec.ports[0].targetPort).toBe('http');
    const deny = find('NetworkPolicy', 'threshold-default-deny');
    expect(deny.spec.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(deny.spec.ingress).toBeUndefined();
    expect(deny.spec.egress).toBeUndefined();
    // Only the API takes traffic, and only on its HTTP port.
    const ingress = docs.filter((d) => d.kind === 'NetworkPolicy' && d.spec.ingress);
    expect(ingress.map((d) => d.spec.podSelector.matchLabels['app.kubernetes.io/component'])).toEqual(['api']);
    expect(ingress[0].spec.ingress[0].ports).toEqual([{ protocol: 'TCP', port: 3000 }]);
  });
});
