/** The golden corpus folder this package ships: pass it as `corpus` to nadam-reference/conformance's runSuite. */
export declare const CORPUS_DIR: string;
