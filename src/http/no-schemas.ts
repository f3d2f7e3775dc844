/**
 * airlock's routes declare no JSON schemas: requests are parsed and checked by hand (v2-path.ts,
 * the OCI types), replies are raw bytes or small objects. Fastify loads Ajv and
 * fast-json-stringify at start-up unless it is given compilers of its own; these refuse to
 * compile, so a schema added to a route fails loudly at start-up instead of pulling them in.
 * Keeps Ajv's modules out of every serving process. See bench/PERFORMANCE.md#fastify-without-ajv.
 */
const refuse = (): never => {
  throw new Error('airlock routes declare no schemas; validate by hand (see src/http/no-schemas.ts)');
};

export const noSchemaCompilers = { compilersFactory: { buildValidator: refuse, buildSerializer: refuse } };
