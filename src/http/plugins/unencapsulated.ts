import type { FastifyPluginCallback, FastifyPluginOptions } from 'fastify';

/**
 * Runs a plugin on the instance that registers it instead of a new encapsulated context, so its
 * hooks, content-type parser and decorators apply to every route, the ones of plugins registered
 * after it included. This is the `'skip-override'` property that fastify documents for it
 * (https://fastify.dev/docs/latest/Reference/Plugins/#handle-the-scope); the `fastify-plugin`
 * module sets the same property, and is not one of airlock's dependencies.
 */
export function unencapsulated<O extends FastifyPluginOptions>(plugin: FastifyPluginCallback<O>): FastifyPluginCallback<O> {
  return Object.assign(plugin, { [Symbol.for('skip-override')]: true });
}
