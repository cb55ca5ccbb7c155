// Who may do what: the users and tokens of --htpasswd and --token-file, the private repositories, and the
// /v2 access policy made of both.
import type { Logger } from 'pino';
import { ConfigError, type Config } from './config.js';
import { RepositoryVisibility } from '../distribution/index.js';
import { AccessPolicy, AuthGuard, CredentialsFileError, ReloadingCredentials, isLoopbackHost } from '../http/index.js';

export interface Access {
  credentials: ReloadingCredentials;
  visibility: RepositoryVisibility;
  v2Access: AccessPolicy;
  /** Logs what the policy leaves open, once the node listens. */
  logPolicy(url: string): void;
}

export async function openAccess(config: Config, logger: Logger): Promise<Access> {
  const credentials = await loadCredentials(config, logger);
  const visibility = new RepositoryVisibility(config.privateRepos);
  const v2Access = new AccessPolicy({ credentials, visibility, exposed: !isLoopbackHost(config.listen.host) });
  const logPolicy = (url: string) => {
    if (v2Access.readOnly) {
      logger.warn({ url }, 'the /v2 endpoint listens beyond loopback with no --htpasswd or --token-file: it is read-only for the network (pushes and private reads are refused)');
    }
    if (v2Access.enforced || visibility.hasPrivate) {
      logger.info({ ...credentials.counts, privateRepos: config.privateRepos, sharePrivateBlobs: config.sharePrivateBlobs }, 'access policy');
    }
  };
  return { credentials, visibility, v2Access, logPolicy };
}

/**
 * The users and tokens of --htpasswd and --token-file, followed as the files change; a malformed file
 * stops the node at start like a bad option, and is reported (the last good set kept) later.
 */
async function loadCredentials(config: Config, logger: Logger): Promise<ReloadingCredentials> {
  try {
    return await ReloadingCredentials.open(
      { htpasswd: config.htpasswd, tokenFile: config.tokenFile },
      ({ ok, detail, users, tokens }) => (ok ? logger.info({ users, tokens }, detail) : logger.warn({ users, tokens }, detail)),
      new AuthGuard({ maxFailuresPerMinute: config.maxAuthFailures }),
    );
  } catch (err) {
    if (!(err instanceof CredentialsFileError)) throw err;
    throw new ConfigError(err.file === config.htpasswd ? 'htpasswd' : 'token-file', err.message);
  }
}
