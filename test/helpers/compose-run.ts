// compose/docker-compose.yml run for real: Debian's docker-compose 1.29 against a private dockerd (see
// dockerd.ts) through its Unix socket. One project per test run, with a name of its own; the engine is
// the test's, so "nothing left behind" can be checked on the whole engine, not only on the project.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { requireTool, runTool } from './clients.js';
import { DOCKER_CLI, type Dockerd } from './dockerd.js';
import { repoRoot } from './processes.js';

export const COMPOSE_FILE = join(repoRoot, 'compose', 'docker-compose.yml');

export interface ContainerState {
  id: string;
  service: string;
  /** created, running, exited, … */
  status: string;
  /** healthy, starting, unhealthy; '' for a container without a healthcheck. */
  health: string;
}

export interface ComposeRun {
  project: string;
  /** docker-compose -f <files> -p <project> ARGS; its stdout. */
  run(args: string[], timeoutMs?: number): Promise<string>;
  /** The project's containers, as the engine sees them. */
  containers(): Promise<ContainerState[]>;
  /** A service's container's output (stdout and stderr), its JSON lines parsed; other lines skipped. */
  logLines(service: string): Promise<Array<Record<string, unknown>>>;
  /** Polls until every listed service has a running container, healthy where it has a healthcheck. */
  waitHealthy(services: string[], timeoutMs: number): Promise<ContainerState[]>;
}

/** A container's stdout and stderr, in one string (layerd logs to stdout, docker-compose to stderr). */
function containerOutput(socket: string, env: Record<string, string>, id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(DOCKER_CLI, ['-H', `unix://${socket}`, 'logs', id], { env: { ...process.env, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      err ? reject(new Error(`docker logs ${id}: ${String(err)}\n${stderr}`)) : resolve(`${stdout}\n${stderr}`),
    );
  });
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  const lines: Array<Record<string, unknown>> = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // a line cut short
    }
  }
  return lines;
}

/** What is read of `docker inspect`'s answer (State.Health only exists for a container with a healthcheck). */
interface Inspected {
  Id: string;
  Config: { Labels: Record<string, string | undefined> };
  State: { Status: string; Health?: { Status: string } };
}

/** A compose project on `dockerd`, from compose/docker-compose.yml plus `overrides` (later files win). */
export async function composeOn(dockerd: Dockerd, clientDir: string, overrides: string[] = []): Promise<ComposeRun> {
  await requireTool('docker-compose');
  const project = `limg${randomBytes(3).toString('hex')}`;
  const env = { DOCKER_HOST: `unix://${dockerd.socket}`, DOCKER_CONFIG: clientDir, COMPOSE_PROJECT_NAME: project };
  const files = [COMPOSE_FILE, ...overrides].flatMap((f) => ['-f', f]);
  const run = (args: string[], timeoutMs = 300_000) => runTool('docker-compose', [...files, '-p', project, ...args], env, timeoutMs);

  const containers = async (): Promise<ContainerState[]> => {
    const ids = (await dockerd.docker('ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`)).split('\n').filter(Boolean);
    if (ids.length === 0) return [];
    const inspected = JSON.parse(await dockerd.docker('inspect', ...ids)) as Inspected[];
    return inspected.map((c) => ({ id: c.Id, service: c.Config.Labels['com.docker.compose.service'] ?? '', status: c.State.Status, health: c.State.Health?.Status ?? '' }));
  };

  const waitHealthy = async (services: string[], timeoutMs: number): Promise<ContainerState[]> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await containers();
      const ok = services.every((s) => states.some((c) => c.service === s && c.status === 'running' && (c.health === '' || c.health === 'healthy')));
      if (ok) return states;
      const broken = states.filter((c) => c.status === 'exited' || c.health === 'unhealthy');
      if (broken.length > 0 || Date.now() > deadline) {
        const why = await Promise.all(states.map(async (c) => `--- ${c.service} ${c.status} ${c.health} ---\n${(await containerOutput(dockerd.socket, env, c.id).catch(String)).slice(-3000)}`));
        throw new Error(`${broken.length > 0 ? 'a container failed' : `not healthy after ${timeoutMs} ms`}: ${JSON.stringify(states)}\n${why.join('\n')}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  };

  const logLines = async (service: string) => {
    const ids = (await containers()).filter((c) => c.service === service).map((c) => c.id);
    const outputs = await Promise.all(ids.map((id) => containerOutput(dockerd.socket, env, id)));
    return outputs.flatMap(jsonLines);
  };

  return { project, run, containers, logLines, waitHealthy };
}
