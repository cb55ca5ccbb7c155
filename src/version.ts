// The package version, for --version and the User-Agent layerd sends to seeds.
import { readFileSync } from 'node:fs';

export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const USER_AGENT = `layerd/${VERSION}`;
