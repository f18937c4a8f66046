"""Weight file formats. Each module knows one format and maps its names onto facegen's own modules."""
