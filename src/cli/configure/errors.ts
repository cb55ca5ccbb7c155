// The one way a configure edit fails: the file is not one it can read. The command turns it into a
// usage error (exit 2) and leaves the file as it was.
export class ConfigFileError extends Error {
  override name = 'ConfigFileError';
}
