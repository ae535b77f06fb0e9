/**
 * kd-ts/node: Node-only helpers (file system, terminal, optional native
 * backends). Kept apart from the main entry so browser bundles never pull in
 * `fs` or terminal code.
 *
 * @module kd-ts/node
 */
export { saveStudent, loadStudent, type SaveStudentOptions, type SaveStudentResult } from './saveStudent.js';
export { progressBar, type ProgressBarOptions } from './progressBar.js';
export { pickNodeBackend, type PickNodeBackendOptions } from './pickNodeBackend.js';
export { readTeacherOutputs, readTeacherCache, type ReadTeacherFilesOptions } from './readTeacherFiles.js';
export {
  writeTeacherOutputs,
  type WriteTeacherFilesOptions,
  type WriteTeacherFilesResult,
} from './writeTeacherFiles.js';
export { listTeacherShards, writeTeacherShards } from './teacherShards.js';
export type { TeacherFileFormat } from './teacherFileFormat.js';
export { writeTransferSet, readTransferSet } from './transferSet.js';
export { workerPool, WorkerPool, type WorkerPoolOptions } from './workers/workerPool.js';
export { fileCheckpointStore, type FileCheckpointStoreOptions } from './fileCheckpointStore.js';
