/** NAdam state dicts as files: the JSON encoding, PyTorch `.pt` files, torch.distributed.checkpoint folders, and their validation. */
export { CheckpointError } from "./pt/errors.ts";
export { readPt, writePt, openPt, DEFAULT_READ_LIMITS } from "./pt/torch-file.ts";
export type { Loss, ReadLimits, OpenedPt } from "./pt/torch-file.ts";
export { STATE_DICT_FORMAT, stateDictFromJson, stateDictToJson, encodeValue, decodeValue, isJsonTensor } from "./json.ts";
export type { JsonStateDict, JsonTensor, JsonValue } from "./json.ts";
export { MAX_ELEMENTS, validateStateDict } from "./validate.ts";
export type { Problem } from "./validate.ts";
export { LazyTensor, materialize } from "./lazy.ts";
export type { Skeleton } from "./lazy.ts";
export type { DeepReport } from "./deep.ts";
export { openDcp } from "./dcp/read.ts";
export {
  DEFAULT_CHUNK_BYTES,
  MAX_JSON_CONTAINERS,
  MAX_JSON_VALUES,
  checkBytes,
  checkFile,
  loadStateDictFile,
  openStateDict,
  readRegularFile,
  replaceFile,
  saveStateDictFile,
  writeStateDictFile,
} from "./files.ts";
export type { CheckedFile, CheckOptions, FileKind, OpenedStateDict } from "./files.ts";
