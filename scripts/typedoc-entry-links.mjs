// @ts-check
/**
 * TypeDoc plugin: `{@link Name}` across kd-ts's entry points.
 *
 * kd-ts documents one module per entry (`kd-ts`, `kd-ts/io`, ...), and TypeDoc
 * resolves a `{@link Name}` by name inside the module of the comment only. So
 * `@throws {@link KdDataError}` on a `kd-ts/io` reader (the errors live in the
 * root), or `{@link FastLSTM}` in a root type (the layer lives in
 * `kd-ts/layers`), would not resolve, and warnings are errors here. This
 * resolver runs only after TypeDoc's own resolution failed: it links a plain
 * `Name` or `Name.member` to the export of that name in another entry, and
 * leaves the link unresolved (TypeDoc warns) when no entry exports it.
 */
import { ReflectionKind } from 'typedoc';

/**
 * The documented export `name` of any module, root first (declarations, not re-export references).
 *
 * @param {import('typedoc').ProjectReflection} project
 * @param {string} name
 * @returns {import('typedoc').Reflection | undefined}
 */
function exportNamed(project, name) {
  for (const module of project.children ?? []) {
    if (!module.kindOf(ReflectionKind.Module)) continue;
    const found = module.children?.find((child) => child.name === name && !child.kindOf(ReflectionKind.Reference));
    if (found) return found;
  }
  return undefined;
}

/** @param {import('typedoc').Application} app */
export function load(app) {
  app.converter.addUnknownSymbolResolver((ref, reflection) => {
    const path = ref.symbolReference?.path;
    if (ref.moduleSource !== undefined || path === undefined || path.length === 0 || path.length > 2) return undefined;
    let target = exportNamed(reflection.project, path[0]?.path ?? '');
    if (target !== undefined && path.length === 2) {
      const member = path[1]?.path;
      target = /** @type {import('typedoc').ContainerReflection} */ (target).children?.find((child) => child.name === member);
    }
    // TypeDoc's own resolver also sets a Reflection as a link's target; its
    // declared result type says string (a URL) only.
    return target === undefined ? undefined : /** @type {any} */ ({ target });
  });
}
