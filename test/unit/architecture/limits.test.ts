/**
 * The size limits of the architecture (README "Architecture"): no class in src/ with more than
 * 25 public members, and a storage driver named in at most two files outside storage/. File
 * length (350 lines) is ESLint's max-lines; the layers are its no-restricted-imports.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const SRC = path.resolve('src');

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Public members of each class: neither private, protected nor #private; the constructor not counted. */
function publicMembers(file: string): Array<{ name: string; count: number }> {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const out: Array<{ name: string; count: number }> = [];
  const visit = (node: ts.Node) => {
    if (ts.isClassDeclaration(node) || ts.isClassExpression(node)) {
      let count = 0;
      for (const m of node.members) {
        if (ts.isConstructorDeclaration(m) || ts.isClassStaticBlockDeclaration(m) || ts.isSemicolonClassElement(m)) continue;
        if (m.name && ts.isPrivateIdentifier(m.name)) continue;
        const mods = ts.canHaveModifiers(m) ? (ts.getModifiers(m) ?? []) : [];
        if (mods.some((x) => x.kind === ts.SyntaxKind.PrivateKeyword || x.kind === ts.SyntaxKind.ProtectedKeyword)) continue;
        count++;
      }
      // Parameter properties (`constructor(readonly x)`) are public members too.
      for (const m of node.members) {
        if (!ts.isConstructorDeclaration(m)) continue;
        for (const p of m.parameters) {
          const mods = ts.getModifiers(p) ?? [];
          const isProperty = mods.some((x) => [ts.SyntaxKind.PublicKeyword, ts.SyntaxKind.ReadonlyKeyword].includes(x.kind));
          const hidden = mods.some((x) => x.kind === ts.SyntaxKind.PrivateKeyword || x.kind === ts.SyntaxKind.ProtectedKeyword);
          if (isProperty && !hidden) count++;
        }
      }
      out.push({ name: `${path.relative(SRC, file)}: ${node.name?.text ?? '(anonymous class)'}`, count });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

describe('architecture limits', () => {
  it('has no class with more than 25 public members', () => {
    const big = files(SRC).flatMap(publicMembers).filter((c) => c.count > 25);
    expect(big).toEqual([]);
  });

  it('names a storage driver in at most two files outside storage/', () => {
    for (const driver of ['filesystem', 's3']) {
      const naming = files(SRC)
        .filter((f) => !f.startsWith(path.join(SRC, 'storage') + path.sep))
        .filter((f) => new RegExp(`['"\`]${driver}['"\`]`).test(readFileSync(f, 'utf8')));
      expect(naming.length, `${driver}: ${naming.map((f) => path.relative(SRC, f)).join(', ')}`).toBeLessThanOrEqual(2);
    }
  });
});
