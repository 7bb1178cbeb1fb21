/** Where Debian installs Chromium (see chromium.js). */
export declare const CHROMIUM_PATH: string
/** The flags every browser run of the repository launches it with. */
export declare const CHROMIUM_ARGS: readonly string[]
