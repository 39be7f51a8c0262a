#!/usr/bin/env node
// The `loragraph` command: TypeScript sources run through tsx, so there is no build step.
import { register } from 'tsx/esm/api';

register();
await import('../server/cli/main.ts');
