//! JUnit XML reports. (filled by the results work)
