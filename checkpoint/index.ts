/** NAdam state dicts as files: the JSON encoding, PyTorch `.pt` files, and their validation. */
export { CheckpointError } from "./pt/errors.ts";
export { readPt, writePt, DEFAULT_READ_LIMITS } from "./pt/torch-file.ts";
export type { Loss, ReadLimits } from "./pt/torch-file.ts";
export { STATE_DICT_FORMAT, stateDictFromJson, stateDictToJson, encodeValue, decodeValue, isJsonTensor } from "./json.ts";
export type { JsonStateDict, JsonTensor, JsonValue } from "./json.ts";
export { MAX_ELEMENTS, validateStateDict } from "./validate.ts";
export type { Problem } from "./validate.ts";
export { MAX_FILE_BYTES, MAX_JSON_CONTAINERS, MAX_JSON_VALUES, checkBytes, checkFile, loadStateDictFile, readRegularFile, replaceFile, saveStateDictFile } from "./files.ts";
export type { CheckedFile, FileKind } from "./files.ts";
