#include "db_virtuoso/core/time_window.hpp"

#include <gtest/gtest.h>

using virtuoso::core::parse_name_list;
using virtuoso::core::TimeWindow;

TEST(TimeWindow, EmptyMeansAlways) {
    std::string error;
    auto w = TimeWindow::parse("  ", &error);
    ASSERT_TRUE(w);
    EXPECT_TRUE(w->always());
    EXPECT_TRUE(w->contains(0));
    EXPECT_TRUE(w->contains(1439));
}

TEST(TimeWindow, SameDayWindowIsHalfOpen) {
    std::string error;
    auto w = TimeWindow::parse("01:00-05:30", &error);
    ASSERT_TRUE(w) << error;
    EXPECT_FALSE(w->contains(59));
    EXPECT_TRUE(w->contains(60));
    EXPECT_TRUE(w->contains(5 * 60 + 29));
    EXPECT_FALSE(w->contains(5 * 60 + 30));
}

TEST(TimeWindow, WrapsPastMidnight) {
    std::string error;
    auto w = TimeWindow::parse("22:00 - 04:00", &error);
    ASSERT_TRUE(w) << error;
    EXPECT_TRUE(w->contains(23 * 60));
    EXPECT_TRUE(w->contains(0));
    EXPECT_TRUE(w->contains(3 * 60 + 59));
    EXPECT_FALSE(w->contains(4 * 60));
    EXPECT_FALSE(w->contains(12 * 60));
}

TEST(TimeWindow, RejectsMalformedWindows) {
    for (const char *bad : {"25:00-05:00", "01:60-02:00", "0100-0500", "1:00", "01:00-", "-01:00",
                            "01:00-01:00", "aa:bb-cc:dd", "01:00-05:00-06:00", "1:5-2:00"}) {
        std::string error;
        EXPECT_FALSE(TimeWindow::parse(bad, &error)) << bad;
        EXPECT_FALSE(error.empty()) << bad;
    }
}

TEST(NameList, SplitsAndTrims) {
    std::string error;
    auto names = parse_name_list(" postgres, app_db ,\"odd, name\" ", &error);
    ASSERT_TRUE(names) << error;
    ASSERT_EQ(names->size(), 3u);
    EXPECT_EQ((*names)[0], "postgres");
    EXPECT_EQ((*names)[1], "app_db");
    EXPECT_EQ((*names)[2], "odd, name");
    EXPECT_TRUE(parse_name_list("", &error)->empty());
}

TEST(NameList, RejectsEmptyAndUnterminated) {
    std::string error;
    EXPECT_FALSE(parse_name_list("a,,b", &error));
    EXPECT_FALSE(parse_name_list("a,", &error));
    EXPECT_FALSE(parse_name_list("\"open", &error));
    EXPECT_FALSE(parse_name_list("\"a\"b", &error));
}
